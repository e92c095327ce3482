# ruff: noqa: E501 - the demo is kept line for line as published
"""Doc 000 §7's Python demo (script/init.py), as published, as text.

One copy for the conformance test (which runs it against the emulator) and for
``benchmarks/upload.py`` (whose naive client it is).  Callers exec it after
replacing the host in ``UPLOAD_URL``; nothing else is changed.
"""

# The demo as published (script/init.py), with only UPLOAD_URL changed; its __main__
# block is replaced by the calls below (the file, ids and credentials are ours).
DEMO = '''
import json
import requests
import os
import base64

UPLOAD_URL = "https://openspeech.bytedance.com/virtual_human/avatar_platform/digime"


def check_res(result):
    if result.status_code != 200:
        raise Exception(f"request code is not {result.status_code}")
    # print(result.text)
    res = result.json()
    if res.get("errMsg") != "success" or res.get("errno") != 0:
        msg = res.get("errMsg")
        raise Exception(f"request err, msg: {msg}")
    return res


def post(url, data, token):
    """封装post方法"""
    headers = {'Content-Type': 'application/json', 'Authorization': token}
    result = requests.post(url=url, headers=headers, data=json.dumps(data))
    return check_res(result)


def read_file_by_chunk(file, chunk_size=1024 * 1024 * 10):
    with open(file, mode='rb') as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                return
            yield chunk


def part_upload_file(file_path, conf_name, role_show_name, video_type, input_resource, app_id, token):
    init_data = {
        "conf_name": conf_name,
        "type": video_type,
        "role_show_name": role_show_name,
        "input_resource": input_resource,
        "appid": app_id,
        "file_suffix": file_path[-3:],
    }
    ret = post(UPLOAD_URL + "/init_part_upload", init_data, token)
    upload_id = ret["data"]
    print("upload_id is:", upload_id)

    upload_data = {
        "conf_name": conf_name,
        "type": video_type,
        "upload_id": upload_id,
        "appid": app_id,
        "file_suffix": file_path[-3:],
    }
    part_num = 1
    # 暂存前一个分片
    tmp_content_str = ""
    tmp_bytes = bytes()
    final_deal = True
    chunks = read_file_by_chunk(file_path)
    for chunk in chunks:
        # print("chunk size is:", len(bytes(chunk)))
        if part_num == 1:
            content = base64.b64encode(bytes(chunk))
            tmp_content_str = content.decode()
            tmp_bytes = bytes(chunk)
            part_num += 1
            continue
        if len(bytes(chunk)) >= 5242880:
            # 当前分片长度大于等于5m,上传前一个分片
            upload_data["part_num"] = part_num - 1
            upload_data["content"] = tmp_content_str
            print("upload part:", part_num - 1)
            ret = post(UPLOAD_URL + "/video_part_upload", upload_data, token)
            content = base64.b64encode(bytes(chunk))
            tmp_content_str = content.decode()
            tmp_bytes = bytes(chunk)
        else:
            # print("deal with last partiton merged")
            # 当前分片长度小于5m,与前一个分片合并上传
            # print("tmp_bytes size is:%d, chunk size is:%d", len(tmp_bytes), len(bytes(chunk)))
            content = base64.b64encode(tmp_bytes + bytes(chunk))
            content_str = content.decode()
            upload_data["part_num"] = part_num - 1
            upload_data["content"] = content_str
            print("upload part:", part_num - 1)
            ret = post(UPLOAD_URL + "/video_part_upload", upload_data, token)
            final_deal = False
        part_num += 1
    if final_deal:
        # print("deal with last partiton")
        upload_data["part_num"] = part_num - 1
        upload_data["content"] = tmp_content_str
        print("upload part:", part_num - 1)
        ret = post(UPLOAD_URL + "/video_part_upload", upload_data, token)

    complete_data = {
        "conf_name": conf_name,
        "type": video_type,
        "upload_id": upload_id,
        "appid": app_id,
        "file_suffix": file_path[-3:]
    }
    ret = post(UPLOAD_URL + "/video_complete_upload", complete_data, token)
'''
